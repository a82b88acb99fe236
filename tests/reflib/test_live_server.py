import urllib.request

from tests.conftest import Cast
from tests.live import DaphneCluster


def test_a_real_daphne_process_serves_the_home_page_from_the_test_database(
    cast: Cast, daphne_cluster: DaphneCluster
) -> None:
    (server,) = daphne_cluster.start(1)
    with urllib.request.urlopen(f"{server.http_url}/", timeout=10) as response:  # noqa: S310
        body = response.read().decode()
    assert response.status == 200
    assert "Demo Public Library" in body
