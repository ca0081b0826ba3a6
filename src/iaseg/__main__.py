from iaseg.cli import main

raise SystemExit(main())
