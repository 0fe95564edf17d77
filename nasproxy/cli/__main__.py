from nasproxy.cli import main

main()
