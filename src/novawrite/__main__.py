from novawrite.cli import main

raise SystemExit(main())
