"""The keys folder (`DC_KEYS_DIR`): where every private key and site secret lives.

    <keys_dir>/                    0700, never inside the data folder (backups and support
                                   bundles of the data folder must not carry keys)
      signing/<key-id>.pem         0600, Ed25519 private key (PKCS#8 PEM) that signs records
      signing/current              the key id `validate` signs with
      signing/retired/<key-id>.pem 0600, keys rotated out (kept to show what signed before)
      secrets/<name>.key           0600, 32 random bytes (hex): keyed seals, e.g. the registry's
      secrets/retired/<name>.<n>.key  secrets rotated out, kept to verify what they sealed

A private file readable by anyone but its owner is refused (KEY_PERMISSIONS), as OpenSSH does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.config import Settings, get_settings
from digital_contrast.keys.errors import KeysError

PRIVATE_MODE = 0o600
FOLDER_MODE = 0o700


@dataclass(frozen=True)
class KeysFolder:
    path: Path

    @classmethod
    def checked(cls, path: Path, data_dir: Path) -> KeysFolder:
        """KEYS_DIR_INVALID when the folder is, or is inside, the data folder."""
        keys, data = Path(path).resolve(), Path(data_dir).resolve()
        if keys == data or data in keys.parents:
            raise KeysError("KEYS_DIR_INVALID",
                            "DC_KEYS_DIR must be outside DC_DATA_DIR (the data folder is backed "
                            "up and copied for support; keys must not travel with it)")
        return cls(keys)

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def read_private(self, *parts: str) -> bytes | None:
        """The bytes of a private file, None when absent; KEY_PERMISSIONS when group or others
        may read or write it."""
        path = self.file(*parts)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if stat.S_IMODE(mode) & 0o077:
            raise KeysError("KEY_PERMISSIONS",
                            f"{'/'.join(parts)} in the keys folder is accessible to group or "
                            f"others (mode {stat.S_IMODE(mode):o}); run chmod 600 on it")
        return path.read_bytes()

    def write_private(self, data: bytes, *parts: str, exclusive: bool = False) -> Path:
        """Write a private file 0600 in one step (never a half-written key); the folders on the
        way are made 0700. `exclusive`: only if no such file exists (FileExistsError), so that
        two processes creating the same secret at once agree on the first one."""
        path = self.file(*parts)
        folder = self.path
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        for part in path.parent.relative_to(self.path).parts:
            folder = folder / part
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            os.fchmod(fd, PRIVATE_MODE)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if exclusive:
                os.link(tmp, path)  # atomic, and fails when the name exists
            else:
                os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def secret(self, name: str) -> bytes:
        """The site secret `name`, created (32 random bytes) on first use; when two processes
        create it at once, both use the one written first."""
        parts = ("secrets", f"{name}.key")
        existing = self.read_private(*parts)
        if existing is None:
            with contextlib.suppress(FileExistsError):  # another process was first
                self.write_private(secrets.token_hex(32).encode(), *parts, exclusive=True)
            existing = self.read_private(*parts)
            assert existing is not None
        return bytes.fromhex(existing.decode().strip())


    def rotate_secret(self, name: str) -> bytes:
        """Retire the secret `name` (kept under secrets/retired/) and make a new one current."""
        old = self.read_private("secrets", f"{name}.key")
        if old is not None:
            retired = len(self.retired_secrets(name)) + 1
            self.write_private(old, "secrets", "retired", f"{name}.{retired}.key",
                               exclusive=True)
            self.file("secrets", f"{name}.key").unlink()
        return self.secret(name)

    def retired_secrets(self, name: str) -> list[bytes]:
        folder = self.file("secrets", "retired")
        return [bytes.fromhex(raw.decode().strip()) for path in
                sorted(folder.glob(f"{name}.*.key"), key=lambda p: int(p.name.split(".")[-2]))
                if (raw := self.read_private("secrets", "retired", path.name)) is not None]


def keys_folder(settings: Settings | None = None) -> KeysFolder:
    settings = settings or get_settings()
    return KeysFolder.checked(settings.keys_dir, settings.data_dir)
