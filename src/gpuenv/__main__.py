from gpuenv.cli.main import main

main()
