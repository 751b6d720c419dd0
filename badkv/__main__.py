from badkv.cli import main

main()
