#!/usr/bin/env python3
"""The runner chaos checker catches what it claims to: overlapping runs, a frozen runner's
run that was not fenced, and runs whose terms go backwards; it excuses only what SIGSTOP
explains. Run: python3 chaos/test_runners_check.py (no root needed)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runners import Report, Run, check  # noqa: E402


def run(node: str, term: int, start: float, end: float, first: float = 0, last: float = 0) -> Run:
    return Run(node, term, 1, start, end, accepted=1, refused=0,
               first_accepted=first or start, last_accepted=last or start)


class Checker(unittest.TestCase):
    def test_runs_one_after_another_pass(self) -> None:
        violations: list = []
        result = check([run("n0", 1, 0, 10), run("n1", 2, 10.5, 20)], Report(), violations)
        self.assertEqual(violations, [])
        self.assertEqual(result["overlaps"], 0)

    def test_an_overlap_is_a_violation(self) -> None:
        violations: list = []
        check([run("n0", 1, 0, 10), run("n1", 2, 9.9, 20)], Report(), violations)
        self.assertEqual(len(violations), 1)
        self.assertIn("overlap", violations[0])

    def test_an_overlap_under_sigstop_is_excused_when_fenced(self) -> None:
        report = Report()
        report.pauses["n0"].append((5.0, 8.0))
        violations: list = []
        older = run("n0", 1, 0, 8.2, last=4.9)
        result = check([older, run("n1", 2, 6.0, 20, first=6.1)], report, violations)
        self.assertEqual(violations, [])
        self.assertEqual(result["excused"], 1)

    def test_an_unfenced_write_under_sigstop_is_a_violation(self) -> None:
        report = Report()
        report.pauses["n0"].append((5.0, 8.0))
        violations: list = []
        older = run("n0", 1, 0, 8.2, last=8.1)  # accepted after the newer run's first write
        check([older, run("n1", 2, 6.0, 20, first=6.1)], report, violations)
        self.assertEqual(len(violations), 1)
        self.assertIn("fencing failed", violations[0])

    def test_a_pause_of_another_runner_excuses_nothing(self) -> None:
        report = Report()
        report.pauses["n2"].append((5.0, 8.0))
        violations: list = []
        check([run("n0", 1, 0, 8.2), run("n1", 2, 6.0, 20)], report, violations)
        self.assertEqual(len(violations), 1)

    def test_terms_must_grow_from_one_node_to_the_next(self) -> None:
        violations: list = []
        check([run("n0", 3, 0, 10), run("n1", 3, 11, 20)], Report(), violations)
        self.assertEqual(len(violations), 1)
        self.assertIn("started after", violations[0])

    def test_gaps_are_measured_from_the_stopped_run(self) -> None:
        report = Report()
        report.stops.append(("crash", "n0", 9.0))
        result = check([run("n0", 1, 0, 10), run("n1", 2, 10.7, 20)], report, [])
        self.assertAlmostEqual(result["gaps"]["crash"][0], 0.7)


if __name__ == "__main__":
    unittest.main()
