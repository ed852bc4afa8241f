// What the test pages (load_gltf.html, shade_gltf.html) share with photoforge.qa.browser_load:
// a pending /hold request keeps chromium's virtual time budget from running out while a GLB's
// textures decode; `show` writes the page's answer into the title and #result, then /release.
fetch("/hold", { cache: "no-store" }).catch(() => {});

export function show(text) {
  document.title = text;
  document.getElementById("result").textContent = text;
  fetch("/release", { cache: "no-store" }).catch(() => {});
}
