"""Not a logger: the hook that makes Snakemake's ``--configfile`` errors clear.

Snakemake imports every package named ``snakemake_logger_plugin_*`` while it builds its
command line, before it reads ``--configfile``; importing this one installs
``corruptlab.core.configfile`` (read its docstring for why and for the upstream fix). To be
a valid plugin it defines a ``LogHandler``; selecting it (``--logger corruptlab``) logs nothing.
"""

from snakemake_interface_logger_plugins.base import LogHandlerBase

try:  # never in the way of Snakemake: a corruptlab without the module (another checkout's
    # src first on sys.path) leaves Snakemake's own messages
    from corruptlab.core.configfile import install
except ImportError:
    pass
else:
    install()


class LogHandler(LogHandlerBase):
    def emit(self, record) -> None:  # noqa: D102 (logs nothing: see the module docstring)
        return None

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return False

    @property
    def has_formatter(self) -> bool:
        return False

    @property
    def needs_rulegraph(self) -> bool:
        return False
