"""What a run needs from the machine: the command line (one-line errors, signals), the run lock,
several processes, the device mesh and the run's checkpoints on disk. The bottom layer beside
`errors` and `config`: it imports nothing else of the package."""
