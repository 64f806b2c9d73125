namespace Sdxl.Net.Synthetic;
