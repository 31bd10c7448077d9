"""A migration script as a platform team would write it: convert, gate on fidelity, compare.

Run: python examples/migrate.py [OUTPUT_DIR]
Exit status 0 when every converted policy set is exact and judged equivalent by the engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polyfence

HERE = Path(__file__).resolve().parent


def main(out_dir: str | None = None) -> int:
    status = 0
    for scenario in ("shop", "egress-lockdown"):
        bundle = polyfence.load([str(HERE / scenario)])
        try:
            result = polyfence.convert(bundle, to="kubernetes")
        except polyfence.LossyTranslationError as exc:
            print(f"{scenario}: refused: {exc}")
            for loss in exc.report.losses:
                print(f"  {loss}")
            status = 1
            continue
        report = result.report
        verdict = report.verification.relation if report.verification else "not verified"
        print(
            f"{scenario}: {len(result.documents)} policies, exact={report.exact}, engine says {verdict}"
        )
        for loss in report.losses:
            print(f"  {loss}")
        check = polyfence.compare(bundle.policies, result.policies, inventory=bundle.inventory)
        if check.relation is not polyfence.Relation.EQUIVALENT:
            print(f"  NOT equivalent: {check.relation.value}")
            status = 1
        if out_dir:
            from polyfence.io.files import dump, write_atomic

            write_atomic(Path(out_dir) / f"{scenario}.yaml", dump(result.documents, "yaml"))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
