from ddpg.cli import main

raise SystemExit(main())
