"""`make up`: the sandbox and `airflow standalone` with the project's DAGs, until Ctrl-C.

The UI is on http://localhost:8080 (user admin, the password printed below); both DAGs talk to the
sandbox through connections set in the environment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from clever_attendance.sandbox.process import running_sandbox
from clever_attendance.sandbox.wiring import AIRFLOW, ROOT, airflow_env, prepare

WORK = ROOT / ".demo" / "up"
PASSWORD_WAIT = 180


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True, mode=0o700)
    with running_sandbox("--clever-port", "8081", "--upload-port", "8082", workdir=str(WORK)) as sandbox:
        # the Connections form's Test button: one real call to the sandbox's Clever or Safety Shield
        env = {**airflow_env(WORK / "airflow_home", sandbox, WORK / "staging"),
               "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        prepare(env)
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env,
                                      stdout=open(WORK / "standalone.log", "wb"), stderr=subprocess.STDOUT)
        try:
            secret = WORK / "airflow_home" / "simple_auth_manager_passwords.json.generated"
            deadline = time.monotonic() + PASSWORD_WAIT
            while not secret.exists():
                if standalone.poll() is not None or time.monotonic() > deadline:
                    print(f"airflow standalone did not come up; see {WORK}/standalone.log", file=sys.stderr)
                    return 1
                time.sleep(1)
            print(f"Sandbox: Clever {sandbox['clever_url']}, Safety Shield {sandbox['upload_url']}")
            password = json.loads(secret.read_text())["admin"]
            print(f"Airflow UI: http://localhost:8080  user: admin  password: {password}")
            print(f"Logs: {WORK}/standalone.log. Ctrl-C stops everything.")
            standalone.wait()
        except KeyboardInterrupt:
            pass
        finally:
            standalone.send_signal(signal.SIGINT)
            try:
                standalone.wait(30)
            except subprocess.TimeoutExpired:
                standalone.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
