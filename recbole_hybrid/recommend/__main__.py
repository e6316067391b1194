from recbole_hybrid.recommend.cli import main

main()
