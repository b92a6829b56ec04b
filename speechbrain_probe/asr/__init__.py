"""CTC ASR models with hookable named layers, their training Brain and export."""

from .models import ARCHITECTURES, VGGLSTM, PureBLSTM, build_encoder

__all__ = ["ARCHITECTURES", "PureBLSTM", "VGGLSTM", "build_encoder"]
