"""The offline action error counts only valid steps and valid action dimensions."""
import numpy as np

from h2r.eval.offline import masked_squared_error


def test_masked_error_ignores_padded_steps_and_dims():
    actions = np.zeros((2, 3, 4), np.float32)
    pred = np.ones((2, 3, 4), np.float32)
    pred[:, 2] = 100.0          # past the episode end: must not count
    pred[:, :, 3] = 100.0       # a padded / absent (human grip) dim: must not count
    valid = np.array([[True, True, False]] * 2)
    dims = np.array([[True, True, True, False], [True, True, False, False]])
    err, count = masked_squared_error(pred, actions, valid, dims)
    np.testing.assert_array_equal(count, [6, 4])
    np.testing.assert_allclose(err / count, [1.0, 1.0])
