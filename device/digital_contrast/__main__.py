from digital_contrast.cli import main

main()
