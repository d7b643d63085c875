from imagelabeller_cli.main import main

raise SystemExit(main())
