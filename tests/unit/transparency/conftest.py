"""The review service's `egress` fixture (people, projects, a release flow) serves these tests too."""

from tests.unit.egress.conftest import egress  # noqa: F401 - re-exported fixture
