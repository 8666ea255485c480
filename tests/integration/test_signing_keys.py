"""The keys folder and the site's signing key: where keys live, their permissions, rotation and
revocation, and the commands that manage them."""

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.keys import KeysError, KeysFolder
from digital_contrast.keys.signing import (
    create_signing_key,
    current_signer,
    trusted_keys,
)
from digital_contrast.model.validation_record import SignedRecord, ValidationRecord
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle

runner = CliRunner()


@pytest.fixture
def keys_env(operator_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator environment whose keys folder is empty and trusts nothing yet."""
    from digital_contrast.config import get_settings

    monkeypatch.setenv("DC_KEYS_DIR", str(operator_env / "keys"))
    monkeypatch.setenv("DC_TRUSTED_KEYS", "[]")
    get_settings.cache_clear()
    return operator_env / "keys"


@pytest.mark.req("SRS-SIG-001")
def test_the_keys_folder_must_lie_outside_the_data_folder(tmp_path: Path) -> None:
    for inside in (tmp_path / "data", tmp_path / "data" / "keys"):
        with pytest.raises(KeysError) as info:
            KeysFolder.checked(inside, tmp_path / "data")
        assert info.value.code == "KEYS_DIR_INVALID"
    assert KeysFolder.checked(tmp_path / "keys", tmp_path / "data").path == tmp_path / "keys"


@pytest.mark.req("SRS-SIG-001")
def test_private_files_are_0600_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    folder = KeysFolder(tmp_path / "keys")
    signer = create_signing_key(folder)
    pem = folder.file("signing", f"{signer.key_id}.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    assert len(folder.secret("registry-seal")) == 32
    assert folder.secret("registry-seal") == folder.secret("registry-seal")  # made once
    pem.chmod(0o644)
    with pytest.raises(KeysError) as info:
        current_signer(folder)
    assert info.value.code == "KEY_PERMISSIONS" and "chmod 600" in info.value.detail


@pytest.mark.req("SRS-SIG-001")
def test_rotation_keeps_old_records_valid_until_their_key_is_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from digital_contrast.config import get_settings

    aaa = load_use_case("aaa-cta")
    folder = KeysFolder(tmp_path / "keys")
    old = create_signing_key(folder)
    old_record = record_for(tiny_bundle(tmp_path / "b", aaa), signer=old)
    new = create_signing_key(folder)  # rotation
    assert current_signer(folder).key_id == new.key_id != old.key_id
    assert folder.file("signing", "retired", f"{old.key_id}.pem").is_file()
    assert not folder.file("signing", f"{old.key_id}.pem").exists()

    monkeypatch.setenv("DC_TRUSTED_KEYS", json.dumps([old.public_line, new.public_line]))
    get_settings.cache_clear()
    assert SignedRecord.verify(old_record, trusted_keys(), "old").key_id == old.key_id
    monkeypatch.setenv("DC_TRUSTED_KEYS", json.dumps([new.public_line]))  # revoked
    get_settings.cache_clear()
    with pytest.raises(KeysError) as info:
        SignedRecord.verify(old_record, trusted_keys(), "old")
    assert info.value.code == "SIGNER_UNTRUSTED"


@pytest.mark.req("SRS-SIG-001")
def test_a_malformed_trusted_key_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from digital_contrast.config import get_settings

    monkeypatch.setenv("DC_TRUSTED_KEYS", json.dumps(["ed25519:not-base64!"]))
    get_settings.cache_clear()
    with pytest.raises(KeysError) as info:
        trusted_keys()
    assert info.value.code == "TRUSTED_KEY_INVALID"


@pytest.mark.req("SRS-SIG-001", "SRS-MOD-007")
def test_signing_commands_and_a_record_signed_for_another_purpose(keys_env: Path) -> None:
    created = runner.invoke(app, ["signing", "create"])
    assert created.exit_code == 0, created.output
    line = created.output.strip().splitlines()[-1]
    assert line.startswith("ed25519:") and "NO - add the line below" in created.output
    again = runner.invoke(app, ["signing", "create"])
    assert again.exit_code == 2 and "SIGNING_KEY_EXISTS" in again.output
    rotated = runner.invoke(app, ["signing", "rotate"])
    assert rotated.exit_code == 0 and rotated.output.strip().splitlines()[-1] != line
    shown = runner.invoke(app, ["signing", "show"])
    assert shown.output.strip().splitlines()[-1] == rotated.output.strip().splitlines()[-1]
    assert len(list((keys_env / "signing" / "retired").glob("*.pem"))) == 1

    # A signature made for another purpose never passes as a validation record.
    signer = current_signer(KeysFolder(keys_env))
    record = ValidationRecord.from_payload(json.loads(record_for(
        tiny_bundle(keys_env.parent / "b", load_use_case("aaa-cta")), signer=signer))
        ["payload"], "fixture")
    other = signer.sign_document("registry-state", json.loads(record.model_dump_json()))
    trust = trusted_keys().keys | {signer.key_id: (signer.private.public_key(), "test")}
    with pytest.raises(KeysError) as info:
        SignedRecord.verify(other, type(trusted_keys())(trust), "fixture")
    assert info.value.code == "SIGNATURE_INVALID"


@pytest.mark.req("SRS-SIG-001")
def test_validate_without_a_signing_key_stops_before_any_case(keys_env: Path) -> None:
    result = runner.invoke(app, ["validate", "--protocol", "validation/protocols/aaa-cta.yaml",
                                 "--bundle", str(keys_env)])
    assert result.exit_code == 2 and "SIGNING_KEY_MISSING" in result.output
    assert "digital-contrast signing create" in result.output
    assert not (keys_env.parent / "build").exists()


@pytest.mark.req("SRS-SIG-001")
def test_processes_creating_the_site_secret_at_once_agree_on_one(tmp_path: Path) -> None:
    """Workers of a fresh installation seal their first registry writes concurrently: every one
    must read the same secret, or their seals would not verify for each other."""
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; from digital_contrast.keys import KeysFolder;"
              "print(KeysFolder(Path(sys.argv[1])).secret('registry-seal').hex())")
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "keys")],
                             stdout=subprocess.PIPE, text=True) for _ in range(6)]
    secrets = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    stored = tmp_path / "keys" / "secrets"
    assert [p.name for p in stored.iterdir()] == ["registry-seal.key"]  # no temporary left
    with pytest.raises(FileExistsError):
        KeysFolder(tmp_path / "keys").write_private(b"x", "secrets", "registry-seal.key",
                                                    exclusive=True)
