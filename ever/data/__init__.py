"""Data: video decoding (``video``), training clips (``clips``), the generated ``ever-synth`` dataset
(``synth``) and dataset manifests (``manifest``). Import the submodules directly; importing this
package has no side effects and loads nothing heavy."""
