from anigraph.cli import main

main()
