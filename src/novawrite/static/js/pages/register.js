import { initAuth } from "../authform.js";

initAuth("register");
