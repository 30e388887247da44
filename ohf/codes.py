"""AWS error vocabulary: which error codes mean what to ohf, in one place.

The interpreters turn AWS's answers into `OhfError`s whose `code` is AWS's own error code (or
one of ohf's few codes below); the core, the breaker and the strategies decide by these sets.
Related sets are derived from each other, so a code added to one kind reaches every decision
that depends on that kind.
"""

from __future__ import annotations

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


def fails_over(error: OhfError | None) -> bool:
    """True if `error` means "not here, not now" (capacity, quota, throttled, circuit open).

    A fleet's errors arrive as AWS's "CODE: message" texts, so the codes are looked for there.
    Never true for an error after which AWS may have launched: that request stays open.
    """
    if error is None or error.code in INDETERMINATE_CODES:
        return False
    return error.code in FAILOVER_CODES or any(code in error.message for code in CAPACITY_CODES)
