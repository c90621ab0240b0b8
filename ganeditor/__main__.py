from ganeditor.cli import main

raise SystemExit(main())
