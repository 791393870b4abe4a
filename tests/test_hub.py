"""Hub names: load_model("owner/name") downloads safetensors with huggingface_hub. There is no
network here, so huggingface_hub's snapshot_download is replaced by one that serves local
directories of the same format (what the real one returns: a folder in the Hub cache)."""

from __future__ import annotations

import fnmatch
import shutil

import huggingface_hub
import pytest
from conftest import FIXTURES, LOGIT_RTOL, reference, relative_diff

import minfer
from minfer.checkpoints.loading import HUB_NAMES


def fake_hub(monkeypatch, tmp_path, repos: dict[str, str], calls: list):
    """snapshot_download that copies the allowed files of a local fixture into a cache-like folder."""

    def snapshot_download(repo_id: str, allow_patterns=None, **kwargs):
        calls.append((repo_id, allow_patterns))
        if repo_id not in repos:
            raise huggingface_hub.errors.RepositoryNotFoundError(f"404 Client Error: {repo_id}", response=None)
        out = tmp_path / "hub" / repo_id.replace("/", "--")
        out.mkdir(parents=True, exist_ok=True)
        for f in (FIXTURES / repos[repo_id]).iterdir():
            if any(fnmatch.fnmatch(f.name, p) for p in allow_patterns):
                shutil.copy(f, out / f.name)
        return str(out)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


@pytest.mark.parametrize(
    "name, repo_id, fixture",
    [
        ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M", "tiny-llama-mqa"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny-qwen2"),
        ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B", "tiny-qwen3"),
        ("qwen3-0.6b", "Qwen/Qwen3-0.6B", "tiny-qwen3"),
        ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "tiny-llama-mqa"),
    ],
)
def test_hub_names_download_safetensors_and_load(monkeypatch, tmp_path, name, repo_id, fixture):
    calls: list = []
    fake_hub(monkeypatch, tmp_path, {repo_id: fixture}, calls)
    model = minfer.load_model(name)
    [(asked, patterns)] = calls
    assert asked == repo_id == HUB_NAMES.get(name, name)
    assert "model.safetensors" in patterns and "config.json" in patterns
    assert not any(fnmatch.fnmatch(f, p) for p in patterns for f in ("pytorch_model.bin", "model.pt", "x.pth"))
    ref = reference(fixture)
    assert relative_diff(model.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL


def test_a_gated_repository_says_how_to_get_access(monkeypatch):
    import httpx2

    def gated(repo_id, **kwargs):
        response = httpx2.Response(403, request=httpx2.Request("GET", f"https://huggingface.co/{repo_id}"))
        raise huggingface_hub.errors.GatedRepoError("Access to model is restricted", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)
    with pytest.raises(minfer.ModelLoadError, match=r"meta-llama/Llama-3.2-1B-Instruct is a gated repository.*log in"):
        minfer.load_model("meta-llama/Llama-3.2-1B-Instruct")


def test_no_network_is_a_clear_error(monkeypatch, tmp_path):
    fake_hub(monkeypatch, tmp_path, {}, [])
    with pytest.raises(minfer.ModelLoadError, match="could not download 'Qwen/Qwen3-0.6B'.*local directory"):
        minfer.load_model("Qwen/Qwen3-0.6B")
