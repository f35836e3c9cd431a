from marketstream.cli import main

raise SystemExit(main())
