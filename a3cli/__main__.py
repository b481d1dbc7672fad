from a3cli.cli import main

main()
