import { initAuth } from "../authform.js";

initAuth("login");
