"""Run by Blender (blender -b --factory-startup --python tools/blender_import.py -- FILE.glb): import a GLB with
Blender's own glTF importer and print what it made, as one line `RESULT {json}` (photoforge.qa.blender_import).
"""

import json
import sys

import bpy
import numpy

if not hasattr(numpy, "bool"):  # Debian 12's Blender 3.4 glTF importer still says np.bool, gone since numpy 1.24
    numpy.bool = bool

path = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=path)
meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
nodes, images = set(), set()
for o in meshes:
    for slot in o.material_slots:
        if slot.material is not None and slot.material.use_nodes:
            for node in slot.material.node_tree.nodes:
                nodes.add(node.bl_idname)
                if node.bl_idname == "ShaderNodeTexImage" and node.image is not None:
                    images.add((node.image.name, node.image.size[0], node.image.size[1]))
result = {
    "blender": bpy.app.version_string,
    "meshes": len(meshes),
    "faces": sum(len(o.data.polygons) for o in meshes),
    "nodes": sorted(nodes),
    "images": sorted(images),
    "dimensions": [list(o.dimensions) for o in meshes],
}
print("RESULT " + json.dumps(result), flush=True)
