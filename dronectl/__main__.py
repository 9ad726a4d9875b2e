from dronectl.cli import main

raise SystemExit(main())
