"""One name for the notebook image, on a real hub: with only [images] notebook set, the researcher's server
runs that image; an explicit, different [spawner] image is run as written and `enclave up` warns."""

from __future__ import annotations

import pytest

from tests.support.hub import RunningHub

pytestmark = pytest.mark.integration


def test_hub_runs_the_image_named_in_images_and_warns_when_spawner_names_another(site):
    ann, bob = site.user("ann"), site.user("bob")  # two people: a TOTP code is accepted only once
    alpha, beta = site.project("a", members=[ann]), site.project("b", members=[bob])
    built = site.docker.images.get(site.image)
    renamed = f"enct{site.token}/nb:2"  # the site's new name for its image: a tag of the built one
    built.tag(f"enct{site.token}/nb", "2")
    spawner = {k: v for k, v in site.spawner.items() if k not in ("image", "allowed_images")}
    try:
        hub = RunningHub(site.env, settings={"images": {"notebook": renamed}, "spawner": spawner}, timeout=90)
        site.hubs.append(hub)
        with hub:
            box = site.start_server(hub, site.login(hub, ann), ann, alpha)
            assert box.attrs["Config"]["Image"] == renamed
            assert "enclave: warning" not in hub.logs()

        hub = RunningHub(site.env, settings={"spawner": {**spawner, "image": site.image}}, timeout=90)
        site.hubs.append(hub)
        with hub:
            assert f"enclave: warning: [spawner] image '{site.image}' differs from [images] notebook '{renamed}'" in (
                hub.logs()
            )
            box = site.start_server(hub, site.login(hub, bob), bob, beta)
            assert box.attrs["Config"]["Image"] == site.image
    finally:  # untag only (the built image keeps its own name); force: stopped containers still name it
        site.docker.images.remove(renamed, force=True, noprune=True)
