from tools.redrive.cli import main

raise SystemExit(main())
