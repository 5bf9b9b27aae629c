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


SNAP = "p/ns/demo/uid/snapshots/" + "c" * 40
OLD_SNAP = "p/ns/demo/uid/snapshots/" + "d" * 40
FILES = "p/ns/demo/uid/" + "e" * 64 + "/model/"
OLD_FILES = "p/ns/demo/uid/" + "f" * 64 + "/model/"
ALL_FILES = (f"{FILES}serving.properties", f"{FILES}requirements.txt", f"{OLD_FILES}serving.properties")


@pytest.mark.parametrize(
    ("keep_prefixes", "stray"),
    [
        pytest.param(
            (("bucket", SNAP),),
            (f"{OLD_SNAP}/config.json", f"{OLD_SNAP}.json", OLD_KEY, *ALL_FILES),
            id="the served snapshot's files and marker stay; another commit's go",
        ),
        pytest.param(
            (("old-bucket", SNAP),),
            (f"{SNAP}/config.json", f"{SNAP}.json", f"{OLD_SNAP}/config.json", f"{OLD_SNAP}.json", OLD_KEY, *ALL_FILES),
            id="a keep prefix names its bucket",
        ),
        pytest.param(
            (),
            (f"{SNAP}/config.json", f"{SNAP}.json", f"{OLD_SNAP}/config.json", f"{OLD_SNAP}.json", OLD_KEY, *ALL_FILES),
            id="no snapshot served: every snapshot is stray",
        ),
        pytest.param(
            (("bucket", FILES), ("bucket", SNAP)),
            (KEY, f"{OLD_FILES}serving.properties", f"{OLD_SNAP}/config.json", f"{OLD_SNAP}.json", OLD_KEY),
            id="a served snapshot's model files and commit stay; earlier files and the tarball go",
        ),
    ],
)
def test_the_served_snapshot_is_kept(keep_prefixes: tuple[tuple[str, str], ...], stray: tuple[str, ...]) -> None:
    found = (KEY, OLD_KEY, f"{SNAP}/config.json", f"{SNAP}.json", f"{OLD_SNAP}/config.json", f"{OLD_SNAP}.json")
    found += (f"{FILES}serving.properties", f"{FILES}requirements.txt", f"{OLD_FILES}serving.properties")
    keep_artifact = None if ("bucket", FILES) in keep_prefixes else ("bucket", KEY)
    world = OwnedWorld(models=(ObservedModel("m1", HERE),), artifacts=((HERE, found),))
    collection = plan_collection(
        world, keep=frozenset({"m2"}), keep_artifact=keep_artifact, keep_prefixes=keep_prefixes
    )
    assert collection == Collection(
        models=(ObservedModel("m1", HERE),), keys=(("bucket", tuple(k for k in found if k in stray)),)
    )


def test_a_model_reading_the_kept_snapshots_folder_never_empties_it() -> None:
    world = OwnedWorld(models=(ObservedModel("m1", EARLIER),))
    kept = plan_collection(world, keep_prefixes=(("old-bucket", SNAP),))
    assert kept.folders_before_models == ()
    assert plan_collection(world).folders_before_models == (EARLIER,)
