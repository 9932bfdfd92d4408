"""Tasks: what each modality adds to the :class:`~mtcert_torch.certifier.Certifier`.

A task (:class:`mtcert_torch.task.Task`) says how to make a batch of noisy
copies of one input, how a model output becomes one label per component and
which radius the noise certifies.  Images (:mod:`~mtcert_torch.tasks.image`,
with the model wrapper of :mod:`~mtcert_torch.tasks.adapter`) and point clouds
(:mod:`~mtcert_torch.tasks.pointcloud`) live here; :class:`~mtcert_torch.task.TensorTask`
smooths any tensor.  Tasks import the plugin's base modules and the core,
never the run loop or the command line.
"""

from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.tasks.image import ImageTask
from mtcert_torch.tasks.pointcloud import PointCloudTask

__all__ = ["ImageTask", "PointCloudTask", "SegmentationAdapter"]
