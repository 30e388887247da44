"""AWS error vocabulary: which error codes mean what to ohf, in one place.

The interpreters turn AWS's answers into `OhfError`s whose `code` is AWS's own error code (or
one of ohf's few codes below); the core, the breaker and the strategies decide by these sets.
Related sets are derived from each other, so a code added to one kind reaches every decision
that depends on that kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ohf.model import OhfError

# AWS has no room for the launch in that pool (type x zone) right now.
SHORTAGE_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "SpotMaxPriceTooLow",
        "Unsupported",
        # A fleet's history: every pool refused, several times (AWS's "error" event subtype).
        "allLaunchSpecsTemporarilyBlacklisted",
    }
)
# The account's limits (quotas) stop the launch.
QUOTA_CODES = frozenset(
    {
        "MaxSpotInstanceCountExceeded",
        "VcpuLimitExceeded",
        "InstanceLimitExceeded",
    }
)
# "Not here, not now": try the next instance type / subnet, then report. AWS sends some of
# these as HTTP 5xx; they keep their code (never treated as a server failure).
CAPACITY_CODES = SHORTAGE_CODES | QUOTA_CODES

# AWS asking callers to slow down.
THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "EC2ThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
# AWS failing on its side (HTTP 5xx); an unknown code with a 5xx status becomes InternalError.
SERVER_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# ohf's code for an endpoint that could not be reached or did not answer in time.
CONNECTION_CODE = "connection"
# Failures that say nothing about the request itself: retried, and counted by the breaker.
TRANSIENT_CODES = THROTTLING_CODES | SERVER_CODES | {CONNECTION_CODE}
# After these AWS may or may not have done what it was asked (the answer was lost): a launch
# stays open and status polls look for its tagged instances instead of declaring it failed.
INDETERMINATE_CODES = SERVER_CODES | {CONNECTION_CODE}

# ohf's code for a call refused because the provider's circuit breaker is open.
OPEN_CODE = "circuit_open"
# ohf's code for a launch stopped by the template's maxNumber (weights that do not fit).
MAX_NUMBER_CODE = "maxNumber"
# A provider failing this way says nothing about the next: place the rest there.
FAILOVER_CODES = CAPACITY_CODES | THROTTLING_CODES | {OPEN_CODE, MAX_NUMBER_CODE}

# The identity lacks an IAM permission.
PERMISSION_CODES = frozenset(
    {
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedAccess",
        "OptInRequired",
    }
)
# AWS rejects the credentials themselves.
CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
    }
)


# A fleet's error history (EC2 Fleet "service-error", Spot Fleet "error" events) names its
# errors by event subtype: the ones that mean an AWS error code ohf knows, mapped to it.
HISTORY_CODES = {"spotInstanceCountLimitExceeded": "MaxSpotInstanceCountExceeded"}
# Configuration errors a fleet's history reports: kept as codes, never a reason to fail over.
CONFIG_HISTORY_CODES = frozenset({"iamFleetRoleInvalid", "spotFleetRequestConfigurationInvalid"})
# ohf's own codes for an error known only by its text (a fleet's "CODE: message" reasons, a
# request recorded before codes were kept): only these are read for a code, as a last resort.
TEXT_ONLY_CODES = frozenset({"fleet", "error"})

KNOWN_CODES = (
    CAPACITY_CODES
    | THROTTLING_CODES
    | SERVER_CODES
    | PERMISSION_CODES
    | CREDENTIAL_CODES
    | CONFIG_HISTORY_CODES
    | HISTORY_CODES.keys()
)
# A known code as a whole word (not part of a longer name such as "UnsupportedOperation") where
# AWS and ohf write codes: before ": message" or " - message" ("Could not launch Spot Instances.
# InsufficientInstanceCapacity - There is no Spot capacity..."). Longest first, so that a code
# that begins another ("Throttling", "ThrottlingException") matches whole.
_CODE_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9_.])("
    + "|".join(re.escape(c) for c in sorted(KNOWN_CODES, key=len, reverse=True))
    + r")(?=:|\s+-\s)"
)


def codes_in(text: str) -> tuple[str, ...]:
    """The known AWS error codes `text` names where a code is written (first seen first),
    history subtypes mapped to their codes: the last resort when AWS gives only text."""
    found = (HISTORY_CODES.get(m.group(1), m.group(1)) for m in _CODE_IN_TEXT.finditer(text))
    return tuple(dict.fromkeys(found))


def leading_code(codes: Iterable[str], default: str = "fleet") -> str:
    """The code to give an error with several AWS codes: the first that fails over (that is the
    decision it carries), else the first, else `default`."""
    listed = tuple(codes)
    return next((c for c in listed if c in FAILOVER_CODES), listed[0] if listed else default)


def fails_over(error: OhfError | None) -> bool:
    """True if `error` means "not here, not now" (capacity, quota, throttled, circuit open).

    Decided by the error's code. Only an error that has no AWS code of its own (ohf's "fleet" or
    "error": known by its text alone) is read for one, as a whole code where AWS writes codes
    (`codes_in`), never as a substring of the message. Never true for an error after which AWS
    may have launched: that request stays open.
    """
    if error is None or error.code in INDETERMINATE_CODES:
        return False
    if error.code in FAILOVER_CODES:
        return True
    if error.code not in TEXT_ONLY_CODES:
        return False
    return any(code in FAILOVER_CODES for code in codes_in(error.message))
