// The interactive 3D viewer of report.html: three.js (orbit, zoom, texture on/off, wireframe, detail
// levels) and, when the run made splats, Spark's Gaussian splat renderer. scripts/setup.sh bundles this
// file with esbuild into tools/viewer/dist/viewer.js, a classic script (no ES modules), because module
// scripts and fetch() do not work in a page opened from disk (file://). The report stage copies that
// bundle into the report's viewer/ folder beside one data file per model (viewer/NAME.js, the model's
// bytes as base64), which a <script> tag can load from disk too; over http the viewer fetches the model
// files themselves. What it shows is configured by the JSON in <script id="viewer-config">.
//
// Address parameters (a test, or a link to one view): level=N, texture=0, wireframe=1, show=splats,
// azimuth=DEG and elevation=DEG (orbit from the start view), viewer-only=1 (hide the rest of the page).
// #viewer-status says "ready ..." once the model is drawn, or "error: ...". window.photoforgeViewer is the
// viewer, for the console and scripts: photoforgeViewer.turn(90) looks from the side.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { MeshoptDecoder } from "three/addons/libs/meshopt_decoder.module.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

const FOV = 35;
const START_AZIMUTH = 30; // degrees around the up axis, from the front (+Z)
const START_ELEVATION = 20;
const GREY = new THREE.Color(0xb8b8b8);

function readConfig() {
  const node = document.getElementById("viewer-config");
  if (!node) throw new Error("no #viewer-config in the page");
  return JSON.parse(node.textContent);
}

function setStatus(text) {
  const node = document.getElementById("viewer-status");
  if (node) node.textContent = text;
}

// A model's bytes: fetched over http(s); from disk, its viewer/NAME.js data file sets
// window.photoforgeViewerData[NAME] to the bytes as base64.
const dataScripts = new Map();
function loadDataScript(src, name) {
  if (!dataScripts.has(src)) {
    dataScripts.set(src, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(script);
    }));
  }
  return dataScripts.get(src).then(() => {
    const base64 = (window.photoforgeViewerData || {})[name];
    if (typeof base64 !== "string") throw new Error(`${src} holds no data for ${name}`);
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  });
}

// {bytes, from}: from "url" (fetched over http) or "data" (its data script).
async function modelBytes(entry) {
  if (entry.url && (location.protocol === "http:" || location.protocol === "https:")) {
    try {
      const response = await fetch(entry.url);
      if (response.ok) return { bytes: await response.arrayBuffer(), from: "url" };
    } catch (_) {
      // fall through to the data script (e.g. a server that serves only viewer/)
    }
  }
  return { bytes: await loadDataScript(entry.data, entry.name), from: "data" };
}

class Viewer {
  constructor(config, params) {
    this.config = config;
    this.params = params;
    this.levels = new Map(); // index -> {root, faces, textures}
    this.canvas = document.getElementById("viewer-canvas");
    this.renderer = new THREE.WebGLRenderer({ canvas: this.canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x30343a);
    this.camera = new THREE.PerspectiveCamera(FOV, 1, 0.01, 100);
    this.scene.add(this.camera);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x50505a, 1.6));
    const headlight = new THREE.DirectionalLight(0xffffff, 1.6);
    headlight.position.set(0.5, 0.8, 1);
    this.camera.add(headlight); // lit from the viewer's side whatever the orbit
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.addEventListener("change", () => this.draw());
    this.showing = "mesh";
    this.spark = null;
    this.splats = null;
    new ResizeObserver(() => this.resize()).observe(this.canvas);
  }

  resize() {
    const width = Math.max(this.canvas.clientWidth, 1), height = Math.max(this.canvas.clientHeight, 1);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.draw();
  }

  draw() {
    this.renderer.render(this.scene, this.camera);
  }

  async level(index) {
    if (!this.levels.has(index)) {
      const entry = this.config.levels[index];
      const { bytes, from } = await modelBytes(entry);
      const loader = new GLTFLoader().setMeshoptDecoder(MeshoptDecoder);
      const gltf = await loader.parseAsync(bytes, "");
      let faces = 0, textures = 0;
      gltf.scene.traverse((object) => {
        if (!object.isMesh) return;
        const geometry = object.geometry;
        faces += (geometry.index ? geometry.index.count : geometry.attributes.position.count) / 3;
        const material = object.material;
        material.userData.map = material.map;
        material.userData.color = material.color.clone();
        textures += material.map ? 1 : 0;
      });
      this.levels.set(index, { root: gltf.scene, faces, textures, from });
    }
    return this.levels.get(index);
  }

  async showLevel(index) {
    const level = await this.level(index);
    for (const other of this.levels.values()) this.scene.remove(other.root);
    level.root.visible = this.showing !== "splats"; // the splats stay alone on screen until switched off
    this.scene.add(level.root);
    this.current = index;
    this.applyLook();
    return level;
  }

  applyLook() {
    const texture = document.getElementById("viewer-texture").checked;
    const wireframe = document.getElementById("viewer-wireframe").checked;
    for (const { root } of this.levels.values()) {
      root.traverse((object) => {
        if (!object.isMesh) return;
        const material = object.material;
        material.map = texture ? material.userData.map : null;
        material.color.copy(texture && material.userData.map ? material.userData.color : GREY);
        material.wireframe = wireframe;
        material.needsUpdate = true;
      });
    }
    this.draw();
  }

  frame(root) {
    const box = new THREE.Box3().setFromObject(root);
    const sphere = box.getBoundingSphere(new THREE.Sphere());
    const radius = Math.max(sphere.radius, 1e-6);
    const distance = radius / Math.sin((FOV / 2) * Math.PI / 180) * 0.9;  // the sphere's corners may crop
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(sphere.center);
    this.home = { center: sphere.center.clone(), distance };
    this.orbitTo(START_AZIMUTH, START_ELEVATION);
  }

  // The camera `azimuth` degrees around the up axis and `elevation` degrees above the horizon.
  orbitTo(azimuth, elevation) {
    const a = azimuth * Math.PI / 180, e = elevation * Math.PI / 180;
    const direction = new THREE.Vector3(Math.sin(a) * Math.cos(e), Math.sin(e), Math.cos(a) * Math.cos(e));
    this.camera.position.copy(this.home.center).addScaledVector(direction, this.home.distance);
    this.camera.lookAt(this.home.center);
    this.controls.update();
    this.draw();
  }

  // Orbit from the start view: `azimuth` degrees around the up axis, `elevation` degrees up.
  turn(azimuth, elevation = 0) {
    this.orbitTo(START_AZIMUTH + azimuth, START_ELEVATION + elevation);
  }

  async showSplats(on) {
    this.showing = on ? "splats" : "mesh";
    if (on && !this.splats) {
      const entry = this.config.splats;
      const { bytes } = await modelBytes(entry);
      this.spark = new SparkRenderer({ renderer: this.renderer });
      this.scene.add(this.spark);
      this.splats = new SplatMesh({ fileBytes: bytes, fileName: entry.name });
      await this.splats.initialized;
      this.scene.add(this.splats);
    }
    if (this.splats) this.splats.visible = on;
    for (const [index, { root }] of this.levels) root.visible = !on && index === this.current;
    // Spark sorts the splats in a worker, frame after frame: keep drawing while they are shown
    this.renderer.setAnimationLoop(on ? () => this.draw() : null);
    if (on) await frames(10);
    this.draw();
    return this.splats;
  }
}

function frames(count) {
  return new Promise((resolve) => {
    const step = (left) => (left <= 0 ? resolve() : requestAnimationFrame(() => step(left - 1)));
    step(count);
  });
}

function controlsFor(config, viewer, params) {
  const select = document.getElementById("viewer-level");
  config.levels.forEach((entry, index) => {
    const option = document.createElement("option");
    option.value = String(index);
    option.textContent = entry.label;
    select.appendChild(option);
  });
  select.disabled = config.levels.length < 2;
  select.addEventListener("change", () => viewer.showLevel(+select.value).then(() => report(viewer)));
  for (const id of ["viewer-texture", "viewer-wireframe"]) {
    document.getElementById(id).addEventListener("change", () => viewer.applyLook());
  }
  document.getElementById("viewer-reset").addEventListener("click", () => viewer.orbitTo(START_AZIMUTH, START_ELEVATION));
  const splatBox = document.getElementById("viewer-splats");
  if (splatBox) {
    splatBox.addEventListener("change", () => viewer.showSplats(splatBox.checked).then(() => report(viewer)));
  }
  if (params.get("texture") === "0") document.getElementById("viewer-texture").checked = false;
  if (params.get("wireframe") === "1") document.getElementById("viewer-wireframe").checked = true;
  const level = Math.min(Math.max(+(params.get("level") || 0), 0), config.levels.length - 1);
  select.value = String(level);
  return level;
}

function report(viewer) {
  const level = viewer.levels.get(viewer.current);
  const entry = viewer.config.levels[viewer.current];
  const gl = viewer.renderer.getContext();
  const shown = viewer.showing === "splats" ? `splats=${viewer.splats ? viewer.splats.numSplats : 0}` :
    `faces=${level.faces} textures=${level.textures} from=${level.from}`;
  setStatus(`ready showing=${viewer.showing} level=${entry.name} ${shown} ` +
            `gl=${gl.getParameter(gl.VERSION).replaceAll(" ", "_")}`);
}

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.get("viewer-only") === "1") document.body.classList.add("viewer-only");
  const config = readConfig();
  if (!config.levels || config.levels.length === 0) throw new Error("no model to show");
  const viewer = new Viewer(config, params);
  window.photoforgeViewer = viewer; // for the console and scripted views
  const level = controlsFor(config, viewer, params);
  const { root } = await viewer.showLevel(level);
  viewer.resize();
  viewer.frame(root);
  if (config.splats && params.get("show") === "splats") {
    document.getElementById("viewer-splats").checked = true;
    await viewer.showSplats(true);
  }
  const azimuth = +(params.get("azimuth") || 0), elevation = +(params.get("elevation") || 0);
  if (azimuth || elevation) viewer.turn(azimuth, elevation);
  viewer.draw();
  report(viewer);
}

main().catch((error) => setStatus(`error: ${error && error.message ? error.message : error}`));
