"""Encryption of secrets at rest (OAuth tokens) with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from ``TOKEN_ENCRYPTION_KEY``: either a Fernet key or any passphrase, which is
stretched into one with HKDF. Rotating the key means re-connecting orgs; old tokens then fail
to decrypt and the connection shows "needs reconnect".
"""
from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class TokenCipher:
    def __init__(self, key: str):
        if not key:
            raise RuntimeError("TOKEN_ENCRYPTION_KEY is required")
        self._fernet = Fernet(self._fernet_key(key))

    @staticmethod
    def _fernet_key(key: str) -> bytes:
        raw = key.encode()
        try:
            if len(base64.urlsafe_b64decode(raw)) == 32:
                return raw
        except (ValueError, TypeError):
            pass
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"terapage-token-key",
                       info=b"oauth-tokens").derive(raw)
        return base64.urlsafe_b64encode(derived)

    def encrypt(self, plaintext: str | None) -> bytes | None:
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode()
        except InvalidToken as exc:
            raise TokenDecryptError("stored token cannot be decrypted with the current key") from exc


class TokenDecryptError(Exception):
    pass


_cipher: TokenCipher | None = None


def init_cipher(key: str) -> None:
    global _cipher
    _cipher = TokenCipher(key)


def cipher() -> TokenCipher:
    if _cipher is None:
        raise RuntimeError("token cipher not initialised; call core.crypto.init_cipher")
    return _cipher
