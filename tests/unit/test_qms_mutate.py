"""`qms mutate`: the machinery that seeds faults into a copy of the tree, and the catalogue's
hold on the records it mutates. (`make test` runs the real thing on its own junit report.)"""

import dataclasses
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.junit_report import TestRun
from digital_contrast.qms.mutate import (
    Mutation,
    MutationError,
    Workspace,
    run_mutations,
    tree_copy,
)
from digital_contrast.qms.mutations import MUTATIONS
from digital_contrast.qms.tree import working_tree_hash
from digital_contrast.qms.yaml_records import Problem

RUN = TestRun("junit.xml", "", {})


@pytest.mark.req("SRS-QMS-020")
def test_every_seed_applies_to_the_records_and_is_undone() -> None:
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    with tree_copy(REPO_ROOT) as root:
        before = working_tree_hash(root)
        assert before == working_tree_hash(REPO_ROOT)  # the copy is the working tree
        workspace = Workspace(root)
        for mutation in MUTATIONS:
            assert mutation.seed or mutation.evidence or mutation.closure, mutation.id
            if mutation.seed is None:
                continue
            mutation.seed(workspace)
            assert working_tree_hash(root) != before, mutation.id  # it changed something
            workspace.restore()
            assert working_tree_hash(root) == before, mutation.id  # and nothing is left


@pytest.mark.req("SRS-QMS-020")
def test_a_seed_that_no_longer_applies_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("residual: P1\n")
    workspace = Workspace(tmp_path)
    with pytest.raises(MutationError, match="matches nothing: the mutation no longer applies"):
        workspace.sub("a.yaml", r"^controls: .*$", "controls: []")
    workspace.write("new/deep/b.txt", "x")
    workspace.restore()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]


def _seeded(ws: Workspace) -> None:
    ws.append("README.md", "\nseeded\n")


@pytest.mark.req("SRS-QMS-020")
def test_a_fault_is_caught_only_for_its_own_reason() -> None:
    seen: list[tuple[str, str | None]] = []

    def check(run: TestRun, repo: Path, closure: dict) -> list[Problem]:
        seen.append(("README.md", run.tree))
        if (repo / "README.md").read_text().endswith("seeded\n"):
            return [Problem(f"{repo}/README.md", 3, "README.md holds a seeded line")]
        return []

    mutations = [Mutation("caught", "a seeded line", r"README\.md:3: .*seeded line", seed=_seeded),
                 Mutation("other-reason", "a seeded line", r"something else", seed=_seeded)]
    outcomes = run_mutations(REPO_ROOT, RUN, mutations, check, {})
    assert [(o.mutation.id, o.caught, o.problems) for o in outcomes] == [
        ("caught", True, 1), ("other-reason", False, 1)]
    assert outcomes[0].caught_by == "README.md:3: README.md holds a seeded line"  # root cut
    # Checked as if the tests ran again on the mutated tree: bound to it, not to the original.
    assert len({tree for _, tree in seen}) == 2


@pytest.mark.req("SRS-QMS-020")
def test_a_copy_with_problems_before_seeding_is_refused() -> None:
    def check(run: TestRun, repo: Path, closure: dict) -> list[Problem]:
        return [Problem("qms/device.yaml", 1, "already broken")]

    with pytest.raises(MutationError, match="unmutated tree already has 1 problem"):
        run_mutations(REPO_ROOT, RUN, MUTATIONS[:1], check, {})


@pytest.mark.req("SRS-QMS-020")
def test_the_stale_report_mutation_keeps_the_original_binding() -> None:
    trees: list[str | None] = []

    def check(run: TestRun, repo: Path, closure: dict) -> list[Problem]:
        trees.append(run.tree)
        return [] if run.tree == working_tree_hash(repo) else [Problem("junit.xml", None,
                                                                       "stale report")]

    stale = next(m for m in MUTATIONS if m.stale_report)
    [outcome] = run_mutations(REPO_ROOT, RUN, [dataclasses.replace(stale, expect="stale")],
                              check, {})
    assert outcome.caught and trees[0] == trees[1]  # the report still names the old tree
