"""sigstore-python's offline verdict on keyless bundles: the reference the warden verifier is
compared with (tests/signing.rs).

Usage: python sigstore_verify.py TRUSTED_ROOT ARTIFACT IDENTITY ISSUER BUNDLE...
Prints one line per bundle: `NAME OK` or `NAME REFUSED <reason>`.
"""

import os
import sys

from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy


def main() -> None:
    root, artifact, identity, issuer, *bundles = sys.argv[1:]
    verifier = Verifier(trusted_root=TrustedRoot.from_file(root))
    data = open(artifact, "rb").read()
    wanted = policy.Identity(identity=identity, issuer=issuer)
    for path in bundles:
        name = os.path.basename(path)
        try:
            bundle = Bundle.from_json(open(path, encoding="utf-8").read())
            verifier.verify_artifact(data, bundle, wanted)
            print(f"{name} OK")
        except Exception as error:  # every refusal, whatever its class, is a verdict
            reason = " ".join(str(error).split())
            print(f"{name} REFUSED {type(error).__name__}: {reason}")


if __name__ == "__main__":
    main()
