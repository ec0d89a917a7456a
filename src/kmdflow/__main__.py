from kmdflow.cli import main

main()
