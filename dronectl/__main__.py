from dronectl.app.cli import main

raise SystemExit(main())
