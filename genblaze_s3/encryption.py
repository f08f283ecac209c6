"""Import path of the public 0.3.x package: the encryption value objects now live in
:mod:`genblaze_s3.backend.encryption`."""

from genblaze_s3.backend.encryption import Encryption, EncryptionMode

__all__ = ["Encryption", "EncryptionMode"]
