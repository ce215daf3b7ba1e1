"""Convert a tfds dataset between TFRecord and array_record, record for record.

    python -m h2r.data.convert IN_VERSION_DIR OUT_VERSION_DIR [--format array_record]

Real RLDS datasets (Open X-Embodiment) ship as TFRecord; grain's random access needs
array_record. The tool made for this is

    tfds convert_format --dataset_dir=IN --out_file_format=array_record --out_dir=OUT

but in tensorflow-datasets 4.9.10 it imports apache_beam even without --use_beam (a module-level
`beam.DoFn` subclass), and apache-beam 2.77 would downgrade our pinned protobuf (7 -> 6) and
pillow (13 -> 12). Where Beam is installed, use `tfds convert_format`. Otherwise this module does
the same thing with the same tfds pieces: each shard's serialized examples are read with the
input format's reader and written by tfds' `file_adapters.ADAPTER_FOR_FORMAT[out].write_examples`;
features.json and the other metadata are copied and dataset_info.json gets the new fileFormat.
Everything is written to a temporary folder renamed into place at the end. The benchmark uses the
other direction (array_record -> tfrecord) to give tf.data the same data.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from h2r import files
from h2r.errors import DataError

SUFFIX = {"tfrecord": "tfrecord", "array_record": "array_record"}


def _read_records(path: str, file_format: str):
    if file_format == "tfrecord":
        from tensorflow_datasets.core import file_adapters  # noqa: PLC0415
        for record in file_adapters.ADAPTER_FOR_FORMAT[file_adapters.FileFormat.TFRECORD].make_tf_data(path):
            yield record.numpy()
    elif file_format == "array_record":
        from array_record.python import array_record_data_source  # noqa: PLC0415
        source = array_record_data_source.ArrayRecordDataSource([path])
        for i in range(len(source)):
            yield source[i]
    else:
        raise DataError(f"{path}: unsupported file format {file_format!r}; expected one of {sorted(SUFFIX)}")


def convert(in_dir: str, out_dir: str, out_format: str = "array_record") -> str:
    """Converts the tfds version folder in_dir into out_dir (which must not exist)."""
    from tensorflow_datasets.core import file_adapters  # noqa: PLC0415

    info_path = os.path.join(in_dir, "dataset_info.json")
    if not os.path.isfile(info_path):
        raise DataError(f"{in_dir!r} is not a tfds dataset version folder (no dataset_info.json)")
    if out_format not in SUFFIX:
        raise DataError(f"unsupported output format {out_format!r}; expected one of {sorted(SUFFIX)}")
    if os.path.exists(out_dir):
        raise DataError(f"output folder {out_dir!r} already exists")
    with open(info_path) as f:
        info = json.load(f)
    in_format = info.get("fileFormat", "tfrecord")
    marker = f".{SUFFIX[in_format]}-"
    with files.atomic_dir(out_dir.rstrip("/")) as tmp:
        writer = file_adapters.ADAPTER_FOR_FORMAT[file_adapters.FileFormat(out_format)]
        for name in sorted(os.listdir(in_dir)):
            source = os.path.join(in_dir, name)
            if marker in name:  # a shard: <name>-<split>.<format>-XXXXX-of-YYYYY
                target = os.path.join(tmp, name.replace(marker, f".{SUFFIX[out_format]}-"))
                writer.write_examples(target, enumerate(_read_records(source, in_format)))
                print(f"converted {name}", file=sys.stderr)
            elif name == "dataset_info.json":
                continue
            elif os.path.isfile(source):
                shutil.copy2(source, os.path.join(tmp, name))
        info["fileFormat"] = out_format
        info.pop("alternativeFileFormats", None)
        with open(os.path.join(tmp, "dataset_info.json"), "w") as f:
            json.dump(info, f, indent=2)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m h2r.data.convert",
        description="Convert a tfds dataset version folder (e.g. an Open X-Embodiment RLDS dataset in "
                    "TFRecord) to array_record for the grain pipeline, or back. Same result as "
                    "`tfds convert_format`, without its apache_beam dependency.")
    parser.add_argument("in_dir", help="input version folder, e.g. data/bridge/0.1.0")
    parser.add_argument("out_dir", help="output version folder (must not exist), e.g. data_ar/bridge/0.1.0")
    parser.add_argument("--format", default="array_record", choices=sorted(SUFFIX), help="output file format")
    args = parser.parse_args(argv)
    try:
        convert(args.in_dir, args.out_dir, args.format)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
