"""The garbage-collection planner: what goes, in which order, over the observed owned world."""

from __future__ import annotations

import pytest

from djl_operator.planner import ArtifactFolder, Collection, ObservedModel, OwnedWorld, plan_collection

HERE = ArtifactFolder("bucket", "p/ns/demo/uid/")  # the current spec's folder
EARLIER = ArtifactFolder("old-bucket", "p/ns/demo/uid/")  # a bucket an earlier spec used
KEY = "p/ns/demo/uid/aaa/model.tar.gz"
OLD_KEY = "p/ns/demo/uid/bbb/model.tar.gz"


@pytest.mark.parametrize(
    ("world", "keep", "keep_artifact", "expected"),
    [
        pytest.param(OwnedWorld(), frozenset(), None, Collection(), id="nothing owned: nothing to do"),
        pytest.param(
            OwnedWorld(configs=("c1", "c2"), models=(ObservedModel("m1", HERE), ObservedModel("m2", HERE))),
            frozenset({"c2", "m2"}),
            ("bucket", KEY),
            Collection(configs=("c1",), models=(ObservedModel("m1", HERE),)),
            id="the serving model and config are kept; the folder of the kept artifact is never emptied",
        ),
        pytest.param(
            OwnedWorld(models=(ObservedModel("m1", HERE),)),
            frozenset(),
            None,
            Collection(models=(ObservedModel("m1", HERE),), folders_before_models=(HERE,)),
            id="keeping nothing, a folder no one looked into is emptied with its model",
        ),
        pytest.param(
            OwnedWorld(models=(ObservedModel("m1", EARLIER),), artifacts=((HERE, (KEY,)),)),
            frozenset({"m2"}),
            ("bucket", KEY),
            Collection(models=(ObservedModel("m1", EARLIER),), folders_before_models=(EARLIER,)),
            id="a model of an earlier bucket: its folder is emptied before it goes",
        ),
        pytest.param(
            OwnedWorld(models=(ObservedModel("m1", HERE),), artifacts=((HERE, (KEY, OLD_KEY)),)),
            frozenset({"m2"}),
            ("bucket", KEY),
            Collection(models=(ObservedModel("m1", HERE),), keys=(("bucket", (OLD_KEY,)),)),
            id="in the current folder only the stray keys go, never the kept artifact",
        ),
        pytest.param(
            OwnedWorld(
                models=(ObservedModel("m1", EARLIER), ObservedModel("m0", EARLIER), ObservedModel("mx", None)),
                artifacts=((HERE, (KEY,)),),
            ),
            frozenset(),
            None,
            Collection(
                models=(ObservedModel("m1", EARLIER), ObservedModel("m0", EARLIER), ObservedModel("mx", None)),
                folders_before_models=(EARLIER,),
                keys=(("bucket", (KEY,)),),
            ),
            id="the finalizer keeps nothing; a folder is named once; a model reading nothing of ours names none",
        ),
        pytest.param(
            OwnedWorld(models=(ObservedModel("m2", EARLIER),), artifacts=((EARLIER, (OLD_KEY,)),)),
            frozenset({"m2"}),
            ("bucket", KEY),
            Collection(keys=(("old-bucket", (OLD_KEY,)),)),
            id="a keep key names its bucket: the same key in another bucket is stray",
        ),
    ],
)
def test_plan_collection(
    world: OwnedWorld, keep: frozenset[str], keep_artifact: tuple[str, str] | None, expected: Collection
) -> None:
    assert plan_collection(world, keep=keep, keep_artifact=keep_artifact) == expected


def test_an_empty_collection_says_so() -> None:
    assert Collection().empty
    assert not Collection(keys=(("b", ("k",)),)).empty
