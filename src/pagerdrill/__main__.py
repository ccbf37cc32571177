from pagerdrill.cli import main

main()
