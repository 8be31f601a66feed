"""The exceptions kling_lab raises, in one place.

Hierarchy::

    KlingLabError                  base of everything below
    ├── InvalidInput (ValueError)  bad user input: a request field, a sweep file, a CLI option
    │   ├── InvalidRequest         a Kling input out of range / not allowed (names the field)
    │   └── SweepFileError         a sweep YAML that is missing, unreadable or has unknown keys
    ├── BackendConfigError         a backend that cannot start (no FAL_KEY, wrong host, ...)
    ├── BackendError               a call to fal (or the emulator) failed; says if it is transient
    │   └── SubmitUnanswered       a submit was sent and never answered: fal may have the job
    ├── DownloadError              a video could not be downloaded or is not a playable file
    └── StoreWriteError            the journal or the run log could not be written (disk full):
                                   the request ids that live only in memory are in the message
"""

from __future__ import annotations


class KlingLabError(Exception):
    """Base class of every kling_lab error."""


class InvalidInput(KlingLabError, ValueError):
    """The user's input is wrong; nothing was submitted or written."""


class InvalidRequest(InvalidInput):
    """A Kling request input is not allowed. ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SweepFileError(InvalidInput):
    """A sweep definition file cannot be used."""


class BackendConfigError(KlingLabError):
    """A backend cannot be used as configured (nothing was submitted)."""


class BackendError(KlingLabError):
    """A queue call failed.

    ``transient`` says whether retrying the same call may succeed (429, 5xx,
    connection problems); ``error_type`` is fal's machine-readable type when
    the server gave one (e.g. ``content_policy_violation``).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        transient: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.transient = transient
        self.retry_after_s = retry_after_s


class SubmitUnanswered(BackendError):
    """A submit POST went out and no answer came back: fal may have created (and bill) a job
    whose id nobody saw. Sending it again blindly could pay twice; see ``runner/orphans.py``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_type="submit_unanswered", transient=True)


class StoreWriteError(KlingLabError):
    """The journal or the run log could not be written; paid request ids are in the message."""


class DownloadError(KlingLabError):
    """A result video could not be fetched or is not a valid video."""

    def __init__(self, message: str, *, error_type: str = "download_error", transient: bool = True) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.transient = transient
