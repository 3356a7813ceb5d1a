from heysh.cli import main

raise SystemExit(main())
