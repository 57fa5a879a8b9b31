import numpy as np
import pytest
from PIL import Image

from saliency.data.imageio import ImageReadError, image_size, read_rgb, write_rgb


def test_rgb_order_survives_the_opencv_file_boundary(tmp_path):
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 255
    write_rgb(tmp_path / "red.png", red)
    assert np.asarray(Image.open(tmp_path / "red.png").convert("RGB"))[0, 0].tolist() == [255, 0, 0]
    assert read_rgb(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_grayscale_and_rgba_become_rgb(tmp_path):
    Image.fromarray(np.full((3, 4), 77, np.uint8), "L").save(tmp_path / "g.png")
    g = read_rgb(tmp_path / "g.png")
    assert g.shape == (3, 4, 3) and (g == 77).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 128  # half transparent green over black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_rgb(tmp_path / "a.png")[0, 0].tolist() == [0, 100, 0]


def test_exif_orientation_is_honoured(tmp_path):
    img = np.zeros((10, 30, 3), np.uint8)  # stored landscape
    img[:, :5] = 255  # white band on the left
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_rgb(tmp_path / "r.jpg")
    assert out.shape[:2] == (30, 10)  # displayed portrait
    assert out[:5].mean() > 200 and out[-5:].mean() < 50  # left band now on top
    assert image_size(tmp_path / "r.jpg") == (10, 30)


@pytest.mark.parametrize("content", [b"", b"hello, not an image"])
def test_unreadable_files_raise_a_clear_error(tmp_path, content):
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(ImageReadError, match="empty file|not a readable image"):
        read_rgb(tmp_path / "x.jpg")
