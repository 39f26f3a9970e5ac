import sys

from imvae_jax.cli import main

sys.exit(main())
