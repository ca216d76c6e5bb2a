"""`python -m bench`: see `bench/run.py`.

The launcher starts first, while this process is still a bare interpreter: every measured command
is started by it, so that none inherits this process's memory high-water mark (see
`bench/launcher.py`). Only then is the benchmark, with Dagster, dlt and the simulator, imported.
"""

import sys

from bench.launcher import Launcher

launcher = Launcher.start()
try:
    from bench.run import main

    status = main(launcher=launcher)
finally:
    launcher.close()
sys.exit(status)
