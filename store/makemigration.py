"""Write a new migration by comparing the tables with a scratch database at the newest
schema: ``python -m store.makemigration 0002 "log rollups"``.  Developers only."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from store.db import _alembic_config, make_engine, upgrade


def main(rev_id: str, message: str, base: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(engine)
        cfg = _alembic_config(engine)
        heads = ScriptDirectory.from_config(cfg).get_heads()
        head = base or (heads[0] if len(heads) == 1 else "heads")
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                         head=head, splice=base is not None)


if __name__ == "__main__":
    main(*sys.argv[1:4])
