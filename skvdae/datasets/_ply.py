"""A small reader and writer of PLY (Stanford polygon) files."""

import os

import numpy as np

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_BYTE_ORDER = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": "="}


def _ply_type(name):
    try:
        return _PLY_TYPES[name]
    except KeyError:
        raise ValueError(f"Unknown PLY property type {name!r}.") from None


def _parse_header(stream):
    if stream.readline().strip() != b"ply":
        raise ValueError("Not a PLY file: it does not start with 'ply'.")
    fmt, elements, comments = None, [], []
    while True:
        line = stream.readline()
        if not line:
            raise ValueError("Truncated PLY header: no 'end_header'.")
        words = line.decode("ascii", errors="replace").split()
        if not words:
            continue
        keyword = words[0]
        if keyword == "end_header":
            break
        if keyword == "format":
            if len(words) < 2 or words[1] not in _BYTE_ORDER:
                raise ValueError(f"Unsupported PLY format line: {line!r}.")
            fmt = words[1]
        elif keyword in ("comment", "obj_info"):
            comments.append(" ".join(words[1:]))
        elif keyword == "element":
            elements.append({"name": words[1], "count": int(words[2]), "props": []})
        elif keyword == "property":
            if not elements:
                raise ValueError("PLY property declared before any element.")
            if words[1] == "list":
                prop = (words[4], _ply_type(words[2]), _ply_type(words[3]))
            else:
                prop = (words[2], None, _ply_type(words[1]))
            elements[-1]["props"].append(prop)
        else:
            raise ValueError(f"Unknown PLY header line: {line!r}.")
    if fmt is None:
        raise ValueError("PLY header has no 'format' line.")
    return fmt, elements, comments


def _read_ascii_element(stream, element):
    count, props = element["count"], element["props"]
    if count == 0:
        return {
            name: np.empty((0,) if counter is None else (0, 0), dtype=dtype)
            for name, counter, dtype in props
        }
    lines = [stream.readline() for _ in range(count)]
    if len(lines) and not lines[-1]:
        raise ValueError(f"Truncated PLY data in element {element['name']!r}.")
    if all(counter is None for _, counter, _ in props):
        table = np.array([line.split() for line in lines], dtype=float).reshape(
            count, len(props)
        )
        return {
            name: table[:, k].astype(dtype) for k, (name, _, dtype) in enumerate(props)
        }
    columns = {name: [] for name, _, _ in props}
    for line in lines:
        words = line.split()
        position = 0
        for name, counter, dtype in props:
            if counter is None:
                columns[name].append(words[position])
                position += 1
            else:
                n = int(words[position])
                columns[name].append(
                    np.array(words[position + 1 : position + 1 + n], dtype=dtype)
                )
                position += 1 + n
    return {
        name: _finish_column(columns[name], counter, dtype)
        for name, counter, dtype in props
    }


def _finish_column(values, counter, dtype):
    if counter is None:
        return np.array(values, dtype=float).astype(dtype)
    lengths = {len(v) for v in values}
    if len(lengths) == 1:
        return np.array(values, dtype=dtype).reshape(len(values), lengths.pop())
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _read_binary_element(data, offset, element, order):
    count, props = element["count"], element["props"]
    if count == 0:
        return {
            name: np.empty((0,) if counter is None else (0, 0), dtype=dtype)
            for name, counter, dtype in props
        }, offset
    # Fast path: assume every list has the length of the first row's list.
    fields, position = [], offset
    for name, counter, dtype in props:
        if counter is None:
            fields.append((name, order + dtype))
            position += np.dtype(dtype).itemsize
        else:
            length = int(np.frombuffer(data, order + counter, 1, position)[0])
            fields.append((name + "\0count", order + counter))
            fields.append((name, order + dtype, (length,)))
            position += np.dtype(counter).itemsize + length * np.dtype(dtype).itemsize
    row = np.dtype(fields)
    if offset + count * row.itemsize <= len(data):
        table = np.frombuffer(data, row, count, offset)
        if all(
            np.all(table[name + "\0count"] == table.dtype[name].shape[0])
            for name, counter, _ in props
            if counter is not None
        ):
            columns = {name: table[name].astype(dtype) for name, _, dtype in props}
            return columns, offset + count * row.itemsize
    if all(counter is None for _, counter, _ in props):
        raise ValueError(f"Truncated PLY data in element {element['name']!r}.")
    # General path: lists of varying length, one row at a time.
    columns = {name: [] for name, _, _ in props}
    try:
        for _ in range(count):
            for name, counter, dtype in props:
                if counter is None:
                    value = np.frombuffer(data, order + dtype, 1, offset)[0]
                    columns[name].append(value)
                    offset += np.dtype(dtype).itemsize
                else:
                    n = int(np.frombuffer(data, order + counter, 1, offset)[0])
                    offset += np.dtype(counter).itemsize
                    columns[name].append(
                        np.frombuffer(data, order + dtype, n, offset).astype(dtype)
                    )
                    offset += n * np.dtype(dtype).itemsize
    except ValueError:
        raise ValueError(
            f"Truncated PLY data in element {element['name']!r}."
        ) from None
    return {
        name: _finish_column(columns[name], counter, dtype)
        for name, counter, dtype in props
    }, offset


def read_ply(path):
    """Read the elements of a PLY file into numpy arrays.

    Supports the ``ascii``, ``binary_little_endian`` and ``binary_big_endian``
    formats, any elements, scalar properties of every PLY type and list
    properties (such as a face's ``vertex_indices``).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    elements : dict
        Maps each element name (in file order, e.g. ``"vertex"``, ``"face"``)
        to a dict from property name to array: a 1-D array of length
        ``count`` for a scalar property; for a list property a 2-D array of
        shape ``(count, length)`` when every list has the same length (for
        example triangles), else a 1-D object array of 1-D arrays. Arrays
        keep the file's types, in native byte order. The header's comments
        are under the key ``"comments"`` (a list of str).

    See Also
    --------
    write_ply : The writer.
    load_bunny : Reads the Stanford bunny with this function.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvdae.datasets import read_ply, write_ply
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "triangle.ply")
    ...     write_ply(path, np.eye(3), faces=[[0, 1, 2]], binary=False)
    ...     ply = read_ply(path)
    >>> ply["vertex"]["x"]
    array([1., 0., 0.], dtype=float32)
    >>> ply["face"]["vertex_indices"]
    array([[0, 1, 2]], dtype=int32)
    """
    with open(path, "rb") as stream:
        fmt, elements, comments = _parse_header(stream)
        result = {}
        if fmt == "ascii":
            for element in elements:
                result[element["name"]] = _read_ascii_element(stream, element)
        else:
            data = stream.read()
            offset = 0
            for element in elements:
                columns, offset = _read_binary_element(
                    data, offset, element, _BYTE_ORDER[fmt]
                )
                result[element["name"]] = columns
    result["comments"] = comments
    return result


def write_ply(path, vertices, *, faces=None, binary=True, comments=()):
    """Write points, and optionally polygons, to a PLY file.

    Parameters
    ----------
    path : str or path-like
        The file, overwritten.
    vertices : array-like of shape (n_vertices, 3)
        Vertex coordinates, written as ``float`` (32-bit) ``x, y, z``.
    faces : array-like of shape (n_faces, k) or sequence of sequences, default=None
        Vertex indices of each polygon, written as the list property
        ``vertex_indices`` (``uchar`` length, ``int`` indices).
    binary : bool, default=True
        Write ``binary_little_endian`` if True, else ``ascii``.
    comments : sequence of str, default=()
        Header comments.

    Returns
    -------
    None

    See Also
    --------
    read_ply : The reader.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvdae.datasets import read_ply, write_ply
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "points.ply")
    ...     write_ply(path, np.zeros((4, 3)))
    ...     len(read_ply(path)["vertex"]["z"])
    4
    """
    vertices = np.asarray(vertices, dtype="<f4")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (n, 3), got {vertices.shape}.")
    faces = [] if faces is None else [np.asarray(f, dtype="<i4") for f in faces]
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    header += [f"comment {comment}" for comment in comments]
    header += [f"element vertex {len(vertices)}"]
    header += [f"property float {axis}" for axis in "xyz"]
    header += [f"element face {len(faces)}"]
    header += ["property list uchar int vertex_indices", "end_header", ""]
    with open(os.fspath(path), "wb") as stream:
        stream.write("\n".join(header).encode("ascii"))
        if binary:
            stream.write(vertices.tobytes())
            for face in faces:
                stream.write(np.uint8(len(face)).tobytes() + face.tobytes())
        else:
            for vertex in vertices:
                stream.write((" ".join(repr(float(v)) for v in vertex) + "\n").encode())
            for face in faces:
                line = " ".join(str(int(i)) for i in [len(face), *face])
                stream.write((line + "\n").encode())
